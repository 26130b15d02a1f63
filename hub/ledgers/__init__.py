"""The ledgers an auditor signs, built from stored events: keys, shredding, printing, the daily close-out."""
