# The origin for bardcast.vcl in Kubernetes: the bardcast Service (k8s/base/service.yaml).
# Varnish resolves the name once, when it loads the VCL; the Service's ClusterIP does not
# change. Varnish takes at most one IPv4 and one IPv6 address for a name.
backend bardcast_origin {
    .host = "bardcast";
    .port = "80";
}
