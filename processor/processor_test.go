package processor_test

import (
	"testing"

	"github.com/payments-api/payments/processor"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status       processor.Status
		valid, final bool
	}{
		{status: processor.StatusPending, valid: true},
		{status: processor.StatusRequiresAction, valid: true},
		{status: processor.StatusRequiresCapture, valid: true},
		{status: processor.StatusSucceeded, valid: true, final: true},
		{status: processor.StatusFailed, valid: true, final: true},
		{status: processor.StatusCanceled, valid: true, final: true},
		{status: "processing"},
		{status: ""},
		{status: "Succeeded"},
	}
	for _, tt := range tests {
		if got := tt.status.Valid(); got != tt.valid {
			t.Errorf("%q.Valid() = %v, want %v", tt.status, got, tt.valid)
		}
		if got := tt.status.Final(); got != tt.final {
			t.Errorf("%q.Final() = %v, want %v", tt.status, got, tt.final)
		}
	}
}
