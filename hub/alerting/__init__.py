"""From stored events to supervisors: the alert rules, the alerts they raise and the notifications sent."""
