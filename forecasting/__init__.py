"""Forecasting: yield, harvest window, demand, balance and recommendations (issue Order 3)."""
