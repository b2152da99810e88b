"""Action, view and block ids: one place, so builders and listeners cannot drift apart."""

from enum import StrEnum


class Action(StrEnum):
    ACK = "incident_ack"
    RESOLVE = "incident_resolve"
    ROLLBACK = "incident_rollback"
    UPDATE = "incident_update"
    DECLARE_SERVICE = "declare_service"  # service picked in the declare modal: reload its deploys
    HOME_REFRESH = "home_refresh"
    SNOOZE = "incident_snooze"  # value "<incident id>:<minutes>"
    MITIGATE = "incident_mitigate"
    CANCEL = "incident_cancel"  # opens the reason form
    LEAD = "incident_lead"  # "I'm the lead"
    FOLLOWUP_DONE = "followup_done"  # value: the follow-up id
    NUDGE_CAUSE = "nudge_cause"  # + "_<deploy id>" (unique in its block); value "<nudge id>:<deploy id>"
    NUDGE_NOT_CAUSED = "nudge_not_caused"  # value "<nudge id>"
    CATALOGUE_USE = "catalogue_use"  # + "_<n>": use a known service for the command that named an unknown one
    CATALOGUE_CREATE = "catalogue_create"  # create the service the command named, and run it
    SERVICE_CHANGE = "service_change"  # rename / merge confirmed in its dialog
    HOME_TEAMS = "home_teams"  # the teams a viewer picked in App Home


class View(StrEnum):
    DECLARE = "incident_declare"
    UPDATE = "incident_post_update"
    CANCEL = "incident_cancel_reason"
    TIMELINE = "incident_add_to_timeline"


class Shortcut(StrEnum):
    ADD_TO_TIMELINE = "add_to_timeline"  # the message shortcut (manifest.yml)


class Block(StrEnum):
    TITLE = "title"
    SERVICE = "service"
    NEW_SERVICE = "new_service"  # the declare form: a service typed in, not picked from the list
    SEVERITY = "severity"
    STARTED = "started"
    SUSPECT = "suspect"
    UPDATE_TEXT = "update_text"
    ACTIONS = "incident_actions"
    CANCEL_REASON = "cancel_reason"
    TIMELINE_INCIDENT = "timeline_incident"
