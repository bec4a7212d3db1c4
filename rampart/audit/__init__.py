"""The audit: drift against the code and posture against attack (scripts/audit)."""
