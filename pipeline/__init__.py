"""segpipe's pipeline definition: typed configuration, create_pipeline() and its runners."""
