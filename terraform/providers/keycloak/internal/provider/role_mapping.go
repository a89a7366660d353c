package provider

import (
	"context"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

// Code shared by the two service account role resources. Their id is
// "{service account user id}/{role id}", as in the official provider.

// roleMappingsPath is the user's realm role mappings, or its mappings of
// the client's roles when clientID is set.
func roleMappingsPath(realm, userID, clientID string) string {
	if clientID == "" {
		return keycloak.Path("realms", realm, "users", userID, "role-mappings", "realm")
	}
	return keycloak.Path("realms", realm, "users", userID, "role-mappings", "clients", clientID)
}

// findRoleMapping returns the directly mapped role with id roleID, or nil.
func findRoleMapping(ctx context.Context, c *keycloak.Client, realm, userID, clientID, roleID string) (*keycloak.Role, error) {
	var roles []keycloak.Role
	if err := c.Get(ctx, roleMappingsPath(realm, userID, clientID), &roles); err != nil {
		return nil, err
	}
	for i := range roles {
		if roles[i].ID == roleID {
			return &roles[i], nil
		}
	}
	return nil, nil
}

func addRoleMapping(ctx context.Context, c *keycloak.Client, realm, userID, clientID string, role *keycloak.Role) error {
	_, err := c.Post(ctx, roleMappingsPath(realm, userID, clientID), []keycloak.Role{*role})
	return err
}

func removeRoleMapping(ctx context.Context, c *keycloak.Client, realm, userID, clientID string, role *keycloak.Role) error {
	err := c.Delete(ctx, roleMappingsPath(realm, userID, clientID), []keycloak.Role{*role})
	if keycloak.IsNotFound(err) {
		return nil
	}
	return err
}

// roleIDFromMappingID returns the part after the last "/".
func roleIDFromMappingID(id string) string {
	return id[strings.LastIndex(id, "/")+1:]
}

// requiredReplaceString is a required attribute whose change replaces the
// resource; a role mapping has nothing to update in place.
func requiredReplaceString(desc string) schema.StringAttribute {
	return schema.StringAttribute{
		Required: true, Description: desc,
		PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
	}
}

func idAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Computed:      true,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}
