package sharding

import "github.com/prometheus/client_golang/prometheus"

// PoolCollector exports each shard's connection pool statistics.
type PoolCollector struct {
	m        *Map
	conns    *prometheus.Desc
	acquires *prometheus.Desc
	waits    *prometheus.Desc
}

// NewPoolCollector returns a collector over m's pools.
func NewPoolCollector(m *Map) *PoolCollector {
	return &PoolCollector{
		m:        m,
		conns:    prometheus.NewDesc("payments_db_pool_connections", "Connections of a shard's pool by state.", []string{"shard", "state"}, nil),
		acquires: prometheus.NewDesc("payments_db_pool_acquires_total", "Connections acquired from a shard's pool.", []string{"shard"}, nil),
		waits:    prometheus.NewDesc("payments_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", []string{"shard"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.acquires
	ch <- c.waits
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.All() {
		st := s.Pool.Stat()
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.IdleConns()), s.Name, "idle")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.AcquiredConns()), s.Name, "acquired")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.MaxConns()), s.Name, "max")
		ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(st.AcquireCount()), s.Name)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.EmptyAcquireCount()), s.Name)
	}
}
