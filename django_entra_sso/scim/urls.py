"""SCIM resources under ``scim/v2/<slug>/`` (included by ``django_entra_sso.urls``)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.BaseView.as_view(), name="scim"),
    # POST …/.search (RFC 7644, 3.4.3) is not offered; listed before "Users/<id>".
    path(".search", views.SearchView.as_view()),
    path("Users/.search", views.SearchView.as_view()),
    path("Groups/.search", views.SearchView.as_view()),
    path("Users", views.UsersView.as_view(), name="scim_users"),
    path("Users/<str:scim_id>", views.UserView.as_view(), name="scim_user"),
    path("Groups", views.GroupsView.as_view(), name="scim_groups"),
    path("Groups/<str:scim_id>", views.GroupView.as_view(), name="scim_group"),
    path(
        "ServiceProviderConfig",
        views.ServiceProviderConfigView.as_view(),
        name="scim_service_provider_config",
    ),
    path("ResourceTypes", views.ResourceTypesView.as_view(), name="scim_resource_types"),
    path("ResourceTypes/<str:name>", views.ResourceTypesView.as_view(), name="scim_resource_type"),
    path("Schemas", views.SchemasView.as_view(), name="scim_schemas"),
    path("Schemas/<str:schema_id>", views.SchemasView.as_view(), name="scim_schema"),
    # Last: any other path is a SCIM 404, not the site's HTML page.
    path("<path:unknown>", views.UnknownPathView.as_view()),
]
