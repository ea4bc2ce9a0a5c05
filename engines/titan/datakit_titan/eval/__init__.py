"""`titan eval` / `titan eval-report`: what each phase bought (datakit_titan.eval.run has the suites)."""
