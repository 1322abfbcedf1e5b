"""Orchestration: apply a plan, run the agent. Clocks and sleeps are injected."""
