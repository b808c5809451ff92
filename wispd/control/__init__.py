"""The control plane: wispctl verbs (one module each, client and server side together) and the client."""
