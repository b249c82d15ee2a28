"""mxctl: deploy, watch and fail over a Postfix/Dovecot primary+standby mail pair."""

__version__ = "0.1.0"
