"""``python -m webhook_adapter.cli``: the same commands as the ``crm-sphere`` script."""

from __future__ import annotations

from webhook_adapter.cli.app import main

if __name__ == "__main__":
    main()
