"""Cloudflare provider: transport (SDK client + errors), mapping (records), provider (CAS)."""

from orchestrator.dns.cloudflare.provider import CloudflareProvider

__all__ = ["CloudflareProvider"]
