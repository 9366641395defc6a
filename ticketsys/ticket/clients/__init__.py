"""The HTTP VacancyClient; the in-process one lives in ``apps/`` where the two services meet."""

from ticketsys.ticket.clients.remote import RemoteVacancyClient

__all__ = ["RemoteVacancyClient"]
