"""Registry, CDISC and publication exports (contract §6, outputs.md): the ADaM
dataset ADCART, the CIBMTR 4100 and EBMT MED-A toxicity rows, and the cohort
toxicity table of a paper. Every value comes from the same day values,
summaries and cohort statistics as the JSON document."""
