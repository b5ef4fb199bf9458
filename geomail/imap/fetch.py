"""placeholder"""
def fetch(s, p, t): raise NotImplementedError
uid_fetch = fetch
