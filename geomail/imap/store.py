"""placeholder"""
def store(s, p, t): raise NotImplementedError
uid_store = store
