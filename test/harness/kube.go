package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kube is a real etcd plus kube-apiserver on 127.0.0.1, with generated
// certificates and an admin kubeconfig (client certificate in system:masters,
// RBAC on). There is no controller-manager: tests create EndpointSlices
// themselves and use a fresh namespace per test.
//
// Stop, Kill and Start act on the apiserver only; etcd and its data stay, so a
// restarted apiserver serves the same objects on the same port with the same
// certificates. Close ends both. Methods are safe for concurrent use.
type Kube struct {
	Dir        string
	Kubeconfig string // admin kubeconfig file
	URL        string // https://127.0.0.1:port
	Config     *rest.Config
	Client     kubernetes.Interface
	CA         *CA

	apiserverBin, etcdBin string
	apiPort               int
	etcdURL               string
	etcdPeerURL           string
	httpc                 *http.Client

	mu        sync.Mutex
	etcd      *Process
	apiserver *Process
}

// serviceCIDR is handed to the apiserver, which insists on one; nothing routes
// to it (no kube-proxy), and it is outside the ranges the backends use.
const serviceCIDR = "10.96.0.0/16"

// kubeReadyTimeout is generous: the apiserver needs 2.4-3.7 s on an idle
// 2-core machine, and CI shares those cores with compiles.
const kubeReadyTimeout = 90 * time.Second

// NewKube starts a Kube in a test-owned directory and ends it when the test
// ends, printing the tail of its logs if the test failed.
func NewKube(t testing.TB) *Kube {
	t.Helper()
	RequireRoot(t)
	k, err := StartKube(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube logs:\n%s", k.Logs())
		}
		k.Close()
	})
	return k
}

// StartKube starts etcd and kube-apiserver with their state under dir and
// waits until the apiserver reports /readyz. On error, everything started is
// stopped and the error includes the tail of the logs.
func StartKube(dir string) (*Kube, error) {
	apiserverBin, etcdBin, err := KubeBinaries()
	if err != nil {
		return nil, err
	}
	k := &Kube{Dir: dir, apiserverBin: apiserverBin, etcdBin: etcdBin}
	if err := k.writePKI(); err != nil {
		return nil, err
	}
	// Free ports are picked by binding :0 and closing, so another process can
	// take one in between; a few attempts make that race harmless.
	const attempts = 3
	for i := 1; ; i++ {
		err = k.startAll()
		if err == nil {
			return k, nil
		}
		logs := k.Logs()
		k.Close()
		if i == attempts || !strings.Contains(logs, "address already in use") {
			return nil, fmt.Errorf("start kube in %s: %w\n%s", dir, err, logs)
		}
	}
}

func (k *Kube) startAll() error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	k.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	k.etcdPeerURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	k.apiPort = ports[2]
	k.URL = fmt.Sprintf("https://127.0.0.1:%d", k.apiPort)
	if err := k.writeKubeconfig(); err != nil {
		return err
	}
	// A previous attempt's member data names other peer URLs.
	if err := os.RemoveAll(filepath.Join(k.Dir, "etcd-data")); err != nil {
		return fmt.Errorf("clear etcd data: %w", err)
	}
	if err := k.startEtcd(); err != nil {
		return err
	}
	return k.Start()
}

func (k *Kube) pki(name string) string { return filepath.Join(k.Dir, "pki", name) }

func (k *Kube) writePKI() error {
	if err := os.MkdirAll(filepath.Join(k.Dir, "pki"), 0o700); err != nil {
		return fmt.Errorf("create pki dir: %w", err)
	}
	ca, err := NewCA("edgegate-test-kube-ca")
	if err != nil {
		return err
	}
	k.CA = ca
	serving, err := ca.Issue(CertRequest{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
		Server:     true,
	})
	if err != nil {
		return err
	}
	admin, err := ca.Issue(CertRequest{CommonName: "edgegate-test-admin", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		return err
	}
	saKey, saPub, err := signingKeyPEM()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt": ca.CertPEM, "apiserver.crt": serving.CertPEM, "apiserver.key": serving.KeyPEM,
		"admin.crt": admin.CertPEM, "admin.key": admin.KeyPEM, "sa.key": saKey, "sa.pub": saPub,
	}
	for name, data := range files {
		if err := os.WriteFile(k.pki(name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	tlsCert, err := admin.TLSCertificate()
	if err != nil {
		return fmt.Errorf("load admin certificate: %w", err)
	}
	k.httpc = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(), Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12,
		}},
	}
	return nil
}

func (k *Kube) writeKubeconfig() error {
	adminCrt, err := os.ReadFile(k.pki("admin.crt"))
	if err != nil {
		return fmt.Errorf("read admin certificate: %w", err)
	}
	adminKey, err := os.ReadFile(k.pki("admin.key"))
	if err != nil {
		return fmt.Errorf("read admin key: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: k.URL, CertificateAuthorityData: k.CA.CertPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: adminCrt, ClientKeyData: adminKey}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	k.Kubeconfig = filepath.Join(k.Dir, "admin.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, k.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	// Tests create objects in bursts; client-go's default 5 qps would make
	// them slow without testing anything.
	restCfg.QPS, restCfg.Burst = 200, 400
	k.Config = restCfg
	k.Client, err = kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	return nil
}

func (k *Kube) startEtcd() error {
	cmd := exec.Command(k.etcdBin,
		"--name=default",
		"--data-dir="+filepath.Join(k.Dir, "etcd-data"),
		"--listen-client-urls="+k.etcdURL,
		"--advertise-client-urls="+k.etcdURL,
		"--listen-peer-urls="+k.etcdPeerURL,
		"--initial-advertise-peer-urls="+k.etcdPeerURL,
		"--initial-cluster=default="+k.etcdPeerURL,
		"--unsafe-no-fsync=true", // test data is disposable; fsync on a shared CI disk only adds latency
		"--log-level=warn",
	)
	p, err := StartProcess("etcd", filepath.Join(k.Dir, "etcd.log"), cmd)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.etcd = p
	k.mu.Unlock()
	plain := &http.Client{Timeout: 2 * time.Second}
	return waitUntil(kubeReadyTimeout, p, func() error {
		resp, err := plain.Get(k.etcdURL + "/health")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			return fmt.Errorf("etcd health: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// Start starts the apiserver (again) and waits for /readyz.
func (k *Kube) Start() error {
	k.mu.Lock()
	if k.apiserver != nil {
		if exited, _ := k.apiserver.Exited(); !exited {
			k.mu.Unlock()
			return errors.New("kube-apiserver is already running")
		}
	}
	cmd := exec.Command(k.apiserverBin,
		"--etcd-servers="+k.etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(k.apiPort),
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", // required with a loopback advertise address
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=RBAC",
		"--client-ca-file="+k.pki("ca.crt"),
		"--tls-cert-file="+k.pki("apiserver.crt"),
		"--tls-private-key-file="+k.pki("apiserver.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+k.pki("sa.pub"),
		"--service-account-signing-key-file="+k.pki("sa.key"),
		"--cert-dir="+filepath.Join(k.Dir, "apiserver-certs"),
		"--profiling=false",
	)
	p, err := StartProcess("kube-apiserver", filepath.Join(k.Dir, "apiserver.log"), cmd)
	if err != nil {
		k.mu.Unlock()
		return err
	}
	k.apiserver = p
	k.mu.Unlock()
	return waitUntil(kubeReadyTimeout, p, func() error {
		resp, err := k.httpc.Get(k.URL + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// Stop stops the apiserver gracefully (SIGTERM).
func (k *Kube) Stop() error {
	k.mu.Lock()
	p := k.apiserver
	k.mu.Unlock()
	if p == nil {
		return nil
	}
	// The apiserver's default shutdown delay is 0 but in-flight watches get up to
	// a minute; 30 s is ample for a test apiserver.
	return p.Stop(30 * time.Second)
}

// Kill kills the apiserver (SIGKILL) as a crash would.
func (k *Kube) Kill() error {
	k.mu.Lock()
	p := k.apiserver
	k.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Kill()
}

// Close ends the apiserver and etcd.
func (k *Kube) Close() {
	k.mu.Lock()
	api, etcd := k.apiserver, k.etcd
	k.mu.Unlock()
	if api != nil {
		api.KillGroup()
	}
	if etcd != nil {
		etcd.KillGroup()
	}
}

// Logs returns the tails of the etcd and apiserver logs.
func (k *Kube) Logs() string {
	const tail = 8 << 10
	return "--- etcd.log (tail)\n" + LogTail(filepath.Join(k.Dir, "etcd.log"), tail) +
		"\n--- apiserver.log (tail)\n" + LogTail(filepath.Join(k.Dir, "apiserver.log"), tail)
}

// waitUntil polls check until it succeeds, the process exits, or timeout passes.
func waitUntil(timeout time.Duration, p *Process, check func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.Done():
			_, err := p.Exited()
			return fmt.Errorf("%s exited before it was ready: %v (last check: %v)", p.Name, err, last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w", p.Name, timeout, last)
		case <-tick.C:
		}
	}
}
