"""Use-cases every adapter calls: record a deploy, work an incident, build a report, import."""
