"""What the site agent and the control plane both speak: reading vocabulary, alarm rules, wire schemas.

A layer below both, so a site install never pulls in the server (and the server never the agent).
"""
