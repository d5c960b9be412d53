terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.20"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state in an Azure Storage container (Entra ID auth, blob lease locking). Configured at init:
  #   terraform init -backend-config=environments/<env>.azurerm.tfbackend
  backend "azurerm" {}
}
