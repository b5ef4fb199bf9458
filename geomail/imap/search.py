"""placeholder"""
def search(s, p, t): raise NotImplementedError
uid_search = search
