"""The failover controller: observe -> decide -> act -> journal."""
