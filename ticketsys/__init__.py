"""ticketsys: a ticket-selling service that runs as one process or as two services."""

__version__ = "0.1.0"
