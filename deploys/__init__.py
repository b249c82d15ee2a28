"""pyinfra deploys: `mailpair.py` (the mail pair) and `sender.py` (the lab's outside MTA).

Run from the repository root: `pyinfra inventories/<env>.py deploys/mailpair.py`.
"""
