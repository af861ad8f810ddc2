"""SCIM resources under ``scim/v2/<slug>/`` (included by ``django_entra_sso.urls``)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.BaseView.as_view(), name="scim"),
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
]
