"""Vacancy: owns the stock of tickets."""
