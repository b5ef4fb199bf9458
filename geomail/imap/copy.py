"""placeholder"""
def copy(s, p, t): raise NotImplementedError
uid_copy = move = uid_move = copy
