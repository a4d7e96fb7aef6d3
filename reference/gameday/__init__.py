"""Game day: an on-call drill on the real system (``mlops-lab gameday``, lab 10).

incidents  what a game can draw, what each breaks, its runbook fix (data only)
shift      a shift of real traffic through the real servers, and the evidence it leaves
game       start, answer, fix, score
cli        ``mlops-lab gameday start|status|answer|fix|score``
"""
