package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// Region is a region the deployment serves.
type Region struct {
	ID     string   `json:"id" doc:"The region's name, as tenants' home regions name it." example:"eu-central"`
	Object string   `json:"object" enum:"region" doc:"Always region."`
	Shards []string `json:"shards" doc:"The database shards of the region; new tenants of the region are placed among them." example:"[\"eu-central-1\"]"`
}

type regionList struct {
	Object string   `json:"object" enum:"list"`
	Data   []Region `json:"data" doc:"Every region with at least one shard, sorted by name."`
}

type regionListOutput struct {
	Body regionList
}

func registerRegions(api huma.API, s *Server) {
	huma.Register(api, operation(huma.Operation{
		OperationID: "list-regions",
		Method:      http.MethodGet,
		Path:        "/v1/regions",
		Summary:     "List regions",
		Description: "Lists the regions this deployment serves and their shards. A tenant's home region (GET /v1/account, region) decides where its data is stored.",
		Tags:        []string{"Account"},
	}, schemeSecretKey), handle(func(ctx context.Context, _ *struct{}) (*regionListOutput, error) {
		out := &regionListOutput{Body: regionList{Object: "list", Data: []Region{}}}
		if s.cfg.Router == nil {
			return out, nil
		}
		m := s.cfg.Router.Map()
		for _, name := range m.Regions() {
			r := Region{ID: name, Object: "region", Shards: []string{}}
			for _, sh := range m.All() {
				if sh.Region == name {
					r.Shards = append(r.Shards, sh.Name)
				}
			}
			out.Body.Data = append(out.Body.Data, r)
		}
		return out, nil
	}))
}
