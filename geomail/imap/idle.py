"""placeholder"""
def idle(s, p, t): raise NotImplementedError
