// The shipped telco policy: detect-only (alert), what modules.security runs
// when no policy file is given. docs/security-policy.md documents every
// rule; modules/security/tests checks each one against a real attack.
#include "modules/security/policy.h"

namespace kagami::modules::security {

const std::string& default_policy_yaml() {
  static const std::string kPolicy = R"(version: 1
rules:
  - name: shell-in-container
    description: a shell started inside a container (an AMF, SMF or UPF image runs no shell)
    severity: warning
    event: exec
    selector: {in_container: true, binary: [sh, bash, dash, ash, zsh, ksh, csh, tcsh, fish, busybox]}
    actions: [alert]
  - name: package-manager-in-container
    description: a package manager inside a container (images are immutable; installing is tampering)
    severity: error
    event: exec
    selector: {in_container: true, binary: [apt, apt-get, dpkg, yum, dnf, rpm, apk, pip, pip3, microdnf]}
    actions: [alert]
  - name: service-account-token-read
    description: the Kubernetes service account token or CA opened
    severity: warning
    event: open
    match:
      path_prefix: [/var/run/secrets/kubernetes.io/serviceaccount/, /run/secrets/kubernetes.io/serviceaccount/]
    actions: [alert]
  - name: write-below-etc
    description: a file under /etc opened for writing inside a container
    severity: error
    event: open
    selector: {in_container: true}
    match: {path_prefix: /etc/, open: write}
    actions: [alert]
  - name: write-below-binary-dirs
    description: a file under /usr, /bin or /sbin opened for writing inside a container
    severity: error
    event: open
    selector: {in_container: true}
    match: {path_prefix: [/usr/, /bin/, /sbin/], open: write}
    actions: [alert]
  - name: read-shadow
    description: /etc/shadow (password hashes) opened, anywhere on the node
    severity: warning
    event: open
    match: {path: /etc/shadow}
    actions: [alert]
  - name: raw-socket-outside-upf
    description: a raw socket (SOCK_RAW) by a process that is not the UPF
    severity: warning
    event: socket
    except: {binary: [upf, open5gs-upfd, free5gc-upf, eupf, oai-upf]}
    match: {arg: {index: 1, equals: 3, mask: 0xf}}
    actions: [alert]
  - name: packet-socket-outside-upf
    description: an AF_PACKET socket (sniffing, injection) by a process that is not the UPF
    severity: warning
    event: socket
    except: {binary: [upf, open5gs-upfd, free5gc-upf, eupf, oai-upf]}
    match: {arg: {index: 0, equals: 17}}
    actions: [alert]
  - name: namespace-change-in-container
    description: setns or unshare inside a container (a container escape step)
    severity: error
    event: [setns, unshare]
    selector: {in_container: true}
    actions: [alert]
  - name: kernel-module-load
    description: init_module or finit_module, anywhere on the node
    severity: critical
    event: [init_module, finit_module]
    actions: [alert]
  - name: bpf-outside-agent
    description: bpf() by any process but the Kagami agent
    severity: warning
    event: bpf
    actions: [alert]
  - name: ptrace
    description: ptrace of another process, anywhere on the node
    severity: warning
    event: ptrace
    actions: [alert]
  - name: setuid-to-root
    description: a non-root process asking for uid 0 (setuid(0))
    severity: error
    event: setuid
    match: {uid_not: 0, arg: {index: 0, equals: 0}}
    actions: [alert]
  - name: setresuid-to-root
    description: a non-root process asking for effective uid 0 (setresuid(-1, 0, -1) and alike)
    severity: error
    event: setresuid
    match: {uid_not: 0, arg: {index: 1, equals: 0, mask: 0xffffffff}}
    actions: [alert]
  - name: mount-in-container
    description: mount or umount inside a container
    severity: error
    event: [mount, umount]
    selector: {in_container: true}
    actions: [alert]
)";
  return kPolicy;
}

}  // namespace kagami::modules::security
