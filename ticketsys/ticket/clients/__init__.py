"""The two VacancyClient implementations. Which one a Ticket gets is decided in ``apps/``."""

from ticketsys.ticket.clients.local import LocalVacancyClient
from ticketsys.ticket.clients.remote import RemoteVacancyClient

__all__ = ["LocalVacancyClient", "RemoteVacancyClient"]
