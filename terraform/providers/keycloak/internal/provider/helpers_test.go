package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestDurationRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		prior types.String
		secs  int64
		want  string
	}{
		{types.StringValue("5m"), 300, "5m"},             // prior spelling kept
		{types.StringValue("5m0s"), 300, "5m0s"},         // canonical kept
		{types.StringValue("5m"), 600, "10m0s"},          // drift: Keycloak's value wins
		{types.StringNull(), 1800, "30m0s"},              // import / unset
		{types.StringUnknown(), 36000, "10h0m0s"},        // computed on create
		{types.StringValue("garbage"), 60, "1m0s"},       // unparsable prior is replaced
		{types.StringValue("1h30m"), 5400, "1h30m"},      // mixed units
		{types.StringValue("90m"), 5400, "90m"},          // same time, other spelling
		{types.StringValue("300s"), 300, "300s"},         // seconds spelling
		{types.StringValue("0s"), 0, "0s"},               // zero
		{types.StringValue("5m"), 301, "5m1s"},           // one second off is drift
		{types.StringValue("5m0s"), 299, "4m59s"},        // and the other way
		{types.StringValue("1h"), 3600, "1h"},            // hours
		{types.StringValue("24h0m0s"), 86400, "24h0m0s"}, // day
	} {
		got := durationValue(tc.prior, &tc.secs)
		if got.ValueString() != tc.want {
			t.Errorf("durationValue(%s, %d) = %q, want %q", tc.prior, tc.secs, got.ValueString(), tc.want)
		}
	}
	if !durationValue(types.StringValue("5m"), nil).IsNull() {
		t.Error("nil seconds must give null")
	}
}

func TestDurationSeconds(t *testing.T) {
	secs, err := durationSeconds(types.StringValue("30m"))
	if err != nil || *secs != 1800 {
		t.Fatalf("durationSeconds(30m) = %v, %v", secs, err)
	}
	if secs, err := durationSeconds(types.StringNull()); secs != nil || err != nil {
		t.Fatalf("null must give nil, got %v, %v", secs, err)
	}
	if _, err := durationSeconds(types.StringValue("five minutes")); err == nil {
		t.Fatal("expected an error for an invalid duration")
	}
}
