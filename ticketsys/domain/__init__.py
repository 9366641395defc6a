"""The business vocabulary shared by both services: models, errors, the VacancyClient contract."""
