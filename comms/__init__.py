"""comms: customer incident communications for GitLab Dedicated."""
