package provider

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure   = (*realmKeystoreRSAGeneratedResource)(nil)
	_ resource.ResourceWithImportState = (*realmKeystoreRSAGeneratedResource)(nil)
)

const (
	keyProviderType   = "org.keycloak.keys.KeyProvider"
	rsaGeneratedKeyID = "rsa-generated"
)

// realmKeystoreRSAGeneratedResource is an "rsa-generated" key provider
// component: Keycloak generates and keeps the RSA key pair. Adding one with
// a higher priority and later disabling the old one rotates signing keys.
type realmKeystoreRSAGeneratedResource struct{ clientHolder }

func newRealmKeystoreRSAGeneratedResource() resource.Resource {
	return &realmKeystoreRSAGeneratedResource{}
}

type realmKeystoreRSAGeneratedModel struct {
	ID        types.String `tfsdk:"id"`
	RealmID   types.String `tfsdk:"realm_id"`
	Name      types.String `tfsdk:"name"`
	Active    types.Bool   `tfsdk:"active"`
	Enabled   types.Bool   `tfsdk:"enabled"`
	Priority  types.Int64  `tfsdk:"priority"`
	Algorithm types.String `tfsdk:"algorithm"`
	KeySize   types.Int64  `tfsdk:"key_size"`
}

func (r *realmKeystoreRSAGeneratedResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_realm_keystore_rsa_generated"
}

func (r *realmKeystoreRSAGeneratedResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A generated RSA key pair (key provider component \"rsa-generated\") of a realm.",
		Attributes: map[string]schema.Attribute{
			"id": idAttribute(),
			"realm_id": schema.StringAttribute{
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{Required: true, Description: "Display name of the key provider."},
			"active": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Whether the keys may sign new tokens. Default true.",
			},
			"enabled": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Whether the keys exist for verification at all. Default true.",
			},
			"priority": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(0),
				Description: "The active key with the highest priority signs. Default 0.",
			},
			"algorithm": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("RS256"),
				Validators: []validator.String{stringvalidator.OneOf("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
			},
			"key_size": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(2048),
				Validators: []validator.Int64{int64validator.OneOf(1024, 2048, 3072, 4096)},
			},
		},
	}
}

func (r *realmKeystoreRSAGeneratedResource) toAPI(m *realmKeystoreRSAGeneratedModel, parentID string) *keycloak.Component {
	return &keycloak.Component{
		ID:           m.ID.ValueString(),
		Name:         m.Name.ValueString(),
		ProviderID:   rsaGeneratedKeyID,
		ProviderType: keyProviderType,
		ParentID:     parentID,
		Config: map[string][]string{
			"active":    {strconv.FormatBool(m.Active.ValueBool())},
			"enabled":   {strconv.FormatBool(m.Enabled.ValueBool())},
			"priority":  {strconv.FormatInt(m.Priority.ValueInt64(), 10)},
			"algorithm": {m.Algorithm.ValueString()},
			"keySize":   {strconv.FormatInt(m.KeySize.ValueInt64(), 10)},
		},
	}
}

func componentValue(c *keycloak.Component, key string) string {
	if v := c.Config[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// read returns the model and the component's parentId (the realm's internal id).
func (r *realmKeystoreRSAGeneratedResource) read(ctx context.Context, realm, id string) (realmKeystoreRSAGeneratedModel, string, error) {
	var c keycloak.Component
	if err := r.client.Get(ctx, keycloak.Path("realms", realm, "components", id), &c); err != nil {
		return realmKeystoreRSAGeneratedModel{}, "", err
	}
	if c.ProviderID != rsaGeneratedKeyID {
		return realmKeystoreRSAGeneratedModel{}, "", fmt.Errorf("component %s is a %q key provider, not %q", id, c.ProviderID, rsaGeneratedKeyID)
	}
	// Keycloak stores defaults for keys never set: active/enabled true, priority 0.
	boolOr := func(key string, def bool) types.Bool {
		if b, err := strconv.ParseBool(componentValue(&c, key)); err == nil {
			return types.BoolValue(b)
		}
		return types.BoolValue(def)
	}
	intOr := func(key string, def int64) types.Int64 {
		if n, err := strconv.ParseInt(componentValue(&c, key), 10, 64); err == nil {
			return types.Int64Value(n)
		}
		return types.Int64Value(def)
	}
	algorithm := componentValue(&c, "algorithm")
	if algorithm == "" {
		algorithm = "RS256"
	}
	return realmKeystoreRSAGeneratedModel{
		ID:        types.StringValue(c.ID),
		RealmID:   types.StringValue(realm),
		Name:      types.StringValue(c.Name),
		Active:    boolOr("active", true),
		Enabled:   boolOr("enabled", true),
		Priority:  intOr("priority", 0),
		Algorithm: types.StringValue(algorithm),
		KeySize:   intOr("keySize", 2048),
	}, c.ParentID, nil
}

func (r *realmKeystoreRSAGeneratedResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan realmKeystoreRSAGeneratedModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	realm := plan.RealmID.ValueString()
	// A component's parent is the realm's internal id, which may differ from its name.
	var realmRep keycloak.Realm
	if err := r.client.Get(ctx, keycloak.Path("realms", realm), &realmRep); err != nil {
		resp.Diagnostics.AddError("Looking up realm "+realm+" failed", err.Error())
		return
	}
	id, err := r.client.Post(ctx, keycloak.Path("realms", realm, "components"), r.toAPI(&plan, realmRep.ID))
	if err != nil {
		resp.Diagnostics.AddError("Creating key provider "+plan.Name.ValueString()+" failed", err.Error())
		return
	}
	state, _, err := r.read(ctx, realm, id)
	if err != nil {
		resp.Diagnostics.AddError("Reading key provider after create failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *realmKeystoreRSAGeneratedResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior realmKeystoreRSAGeneratedModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state, _, err := r.read(ctx, prior.RealmID.ValueString(), prior.ID.ValueString())
	if err != nil {
		notFoundRemoves(ctx, err, resp, "key provider")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *realmKeystoreRSAGeneratedResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan realmKeystoreRSAGeneratedModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	realm, id := plan.RealmID.ValueString(), plan.ID.ValueString()
	_, parentID, err := r.read(ctx, realm, id)
	if err != nil {
		resp.Diagnostics.AddError("Reading key provider before update failed", err.Error())
		return
	}
	if err := r.client.Put(ctx, keycloak.Path("realms", realm, "components", id), r.toAPI(&plan, parentID)); err != nil {
		resp.Diagnostics.AddError("Updating key provider "+plan.Name.ValueString()+" failed", err.Error())
		return
	}
	state, _, err := r.read(ctx, realm, id)
	if err != nil {
		resp.Diagnostics.AddError("Reading key provider after update failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *realmKeystoreRSAGeneratedResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state realmKeystoreRSAGeneratedModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.Delete(ctx, keycloak.Path("realms", state.RealmID.ValueString(), "components", state.ID.ValueString()), nil)
	if err != nil && !keycloak.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting key provider failed", err.Error())
	}
}

// ImportState takes "{realm}/{component id}".
func (r *realmKeystoreRSAGeneratedResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := splitImportID(req.ID, 2, "{realm}/{component id}")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("realm_id"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), parts[1])...)
}
