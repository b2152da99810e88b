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


class View(StrEnum):
    DECLARE = "incident_declare"
    UPDATE = "incident_post_update"


class Block(StrEnum):
    TITLE = "title"
    SERVICE = "service"
    NEW_SERVICE = "new_service"  # the declare form: a service typed in, not picked from the list
    SEVERITY = "severity"
    STARTED = "started"
    SUSPECT = "suspect"
    UPDATE_TEXT = "update_text"
    ACTIONS = "incident_actions"
