"""Forecasting (`task: forecast`) beside the catalogue: series in a table and their data checks.

`series` reads the spec's columns into the long frame statsforecast and mlforecast read
(`unique_id, ds, y`) and checks it (duplicates, gaps, frequency, length, staleness). `ahead` answers
a request to a registered forecaster (series, horizon, future exogenous values): the one function
behind its `python_function` flavor and `POST /forecast`. The estimator
every forecasting candidate builds is `retrainer.models.forecaster.Forecaster`; the frequencies and
their seasons are `retrainer.frequencies` (a leaf, read by the spec).
"""
