"""incident.io in the loop: import and follow incidents, take its webhooks, tell Slack.

Incidents are declared and run in incident.io (every Dedicated tenant but PubSec); this
package turns its records into comms incidents and keeps them in step:

    records   what incident.io says (IoIncident …), parsed; the IncidentSource port
    mapping   Rules: its severities, statuses and tenant field as comms'; incident_key
    sync      import_incident, sync_incident, sync_open → apply_incident; the link
    webhooks  handle_webhook, WebhookReceiver, the WebhookMemory port
    slack     note_sent: the Slack note of what customers were told; the SlackPoster port

Each module is pure: incident.io, Slack and the store are ports, ``now`` is given, and no
socket is opened nor setting read here.  PubSec (Dedicated for Government) incidents never
come from incident.io nor go to Slack.
"""
