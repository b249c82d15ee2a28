"""pyinfra deploys of mxctl, installed as the `mxctl_deploys` package.

    pyinfra INVENTORY mxctl_deploys.mailpair.apply      # the mail pair
    pyinfra INVENTORY mxctl_deploys.controller.apply    # the failover controller

Templates are package data (`templates/`), found wherever mxctl is installed.
"""
