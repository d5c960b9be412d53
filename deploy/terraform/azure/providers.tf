# azurerm has no default_tags: local.tags is passed to every module and set on every taggable resource.
provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true # the storage account has shared keys disabled

  features {
    key_vault {
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
}
