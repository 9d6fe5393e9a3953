"""OpenVINO targets: IR files for OpenVINO's CPU runtime."""
