"""Level 2: drift-triggered retraining, shadow and canary rollouts, automated promotion or rollback.

policy.py      the rules as pure functions (when to retrain; what a shadow or canary proved)
router.py      one endpoint in front of the champion and a candidate: shadow and canary
traffic.py     the 2013 months after training replayed day by day; late labels; scenarios
state.py       the controller's persisted state and its event log
controller.py  the loop: check -> retrain -> gate -> shadow -> canary -> promote / roll back
rollback.py    roll back the model (alias), the data (DVC), or both
drill.py       the bad-labels drill: a wrong label promoted, then the three rollbacks compared
timeline.py    the run as a table and a plot

mlops-lab loop --scenario natural
"""
