"""Ticket: sells tickets, reaching Vacancy only through the VacancyClient protocol."""
