"""Writes for moderation, one module per subdomain: the review queue (`review`), reports (`reports`),
takedowns (`takedowns`), bans (`bans`) and notifications (`notifications`); `refusals` holds the error
type and the checks they share.

Every decision is one transaction that changes the target, records the decision, appends to the
audit log and notifies the people concerned (emails leave after the commit).
"""
