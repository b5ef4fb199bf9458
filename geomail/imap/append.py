"""placeholder"""
def append(s, p, t): raise NotImplementedError
