"""Portfolio service: netting positions, the cash ledger, accounts, equity and P&L."""
