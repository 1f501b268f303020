"""`planc tune`: measure modules on this host, fit the cost model, report, and the tuned model the
compiler reads back."""
