"""convctl: declare ad conversion events in git, plan and apply them, sync CRM events to Meta."""

__version__ = "0.1.0"
