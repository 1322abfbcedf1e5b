"""The pure core: models, rules, quota, planning, matching and payloads. No I/O here."""
