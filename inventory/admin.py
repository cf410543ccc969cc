from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from clinic.admin import HistoryAdmin, LargeTableAdmin, ReadOnlyAdmin
from clinic.forms import add_service_errors

from . import services
from .forms import DeliveryUploadForm, LotOperationForm, StatusReasonForm
from .imports import DeliveryImportError, decode_upload, delivery_import
from .models import Lot, Product, StockMovement, Supplier


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = ["name", "contact_name", "email", "phone"]
    search_fields = ["name", "contact_name", "email"]


@admin.register(Product)
class ProductAdmin(HistoryAdmin):
    list_display = [
        "name",
        "category",
        "stock_unit",
        "content",
        "storage",
        "gtin",
        "reorder_level",
        "active",
    ]
    list_filter = ["category", "storage", "single_use", "active"]
    search_fields = ["name", "manufacturer", "gtin"]
    autocomplete_fields = ["default_supplier"]
    list_select_related = ["default_supplier"]

    @admin.display(description=_("content"))
    def content(self, product):
        if product.content_per_unit is None:
            return "-"
        return f"{product.content_per_unit.normalize():f} {product.get_content_measure_display()}"

    def has_delete_permission(self, request, obj=None):
        # A product with lots is kept: set it inactive instead.
        return False


class LotStatusAction:
    """A changelist action that asks for a reason, then calls a status service per lot."""

    def __init__(self, name, label, service):
        self.name, self.label, self.service = name, label, service
        self.__name__ = name
        self.short_description = label
        self.allowed_permissions = ("change",)

    def __call__(self, model_admin, request, queryset):
        form = StatusReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done, refused = 0, []
            for lot in queryset:
                try:
                    self.service(lot=lot, actor=request.user, reason=form.cleaned_data["reason"])
                    done += 1
                except ValidationError as error:
                    refused.append(f"{lot.lot_number}: {' '.join(error.messages)}")
            if done:
                model_admin.message_user(
                    request, _("%(count)d lot(s) changed.") % {"count": done}, messages.SUCCESS
                )
            for refusal in refused:
                model_admin.message_user(request, refusal, messages.ERROR)
            return None
        return TemplateResponse(
            request,
            "admin/inventory/lot/status_action.html",
            {
                **model_admin.admin_site.each_context(request),
                "title": self.label,
                "lots": queryset,
                "form": form,
                "action": self.name,
                "opts": model_admin.opts,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Lot)
class LotAdmin(HistoryAdmin):
    list_display = [
        "product",
        "lot_number",
        "expiry_date",
        "status",
        "quantity_on_hand",
        "unit_cost",
        "supplier",
        "received_on",
        "ledger_link",
    ]
    list_filter = ["status", "product__category", "expiry_date", "supplier"]
    list_select_related = ["product", "supplier"]
    search_fields = ["lot_number", "product__name", "product__gtin"]
    date_hierarchy = "expiry_date"
    readonly_fields = [
        "product",
        "lot_number",
        "expiry_date",
        "received_on",
        "status",
        "status_reason",
        "quantity_on_hand",
        "unit_cost",
        "ledger_link",
    ]
    fields = [
        "product",
        "lot_number",
        "expiry_date",
        "unit_cost",
        "supplier",
        "received_on",
        "status",
        "status_reason",
        "quantity_on_hand",
        "ledger_link",
    ]
    actions = [
        LotStatusAction("quarantine", _("Quarantine selected lots"), services.lot_quarantine),
        LotStatusAction(
            "release", _("Release selected lots from quarantine"), services.lot_release
        ),
        LotStatusAction("recall", _("Recall selected lots"), services.lot_recall),
    ]
    change_list_template = "admin/inventory/lot/change_list.html"
    change_form_template = "admin/inventory/lot/change_form.html"

    @admin.display(description=_("ledger"))
    def ledger_link(self, lot):
        if lot.pk is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("reports:stock_lot_ledger", args=[lot.pk]),
            _("ledger"),
            reverse("reports:stock_lot_recall", args=[lot.pk]),
            _("recall list"),
        )

    def has_add_permission(self, request):
        # Lots come in by receiving stock (the receiving page or a CSV import).
        return False

    def save_model(self, request, obj, form, change):
        services.lot_update(lot=obj, actor=request.user, supplier=form.cleaned_data["supplier"])

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="inventory_lot_import"),
            path("<int:pk>/operate/", view(self.operate_view), name="inventory_lot_operate"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not request.user.has_perm("inventory.add_lot"):
            raise PermissionDenied
        form = DeliveryUploadForm(request.POST or None, request.FILES or None)
        problems = []
        if request.method == "POST" and form.is_valid():
            try:
                result = delivery_import(
                    text=decode_upload(form.cleaned_data["file"].read()), actor=request.user
                )
            except (DeliveryImportError, UnicodeDecodeError) as error:
                problems = getattr(error, "problems", [str(error)])
            else:
                self.message_user(
                    request,
                    _("Received %(lines)d line(s).") % {"lines": len(result.movements)},
                    messages.SUCCESS,
                )
                return redirect("admin:inventory_lot_changelist")
        return TemplateResponse(
            request,
            "admin/inventory/lot/import.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Import a delivery note"),
                "form": form,
                "problems": problems,
                "opts": self.opts,
            },
        )

    def operate_view(self, request, pk):
        if not request.user.has_perm("inventory.change_lot"):
            raise PermissionDenied
        lot = get_object_or_404(Lot.objects.select_related("product"), pk=pk)
        form = LotOperationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                self._operate(lot, form.cleaned_data, request.user)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                self.message_user(request, _("Done."), messages.SUCCESS)
                return redirect("admin:inventory_lot_change", lot.pk)
        return TemplateResponse(
            request,
            "admin/inventory/lot/operate.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Stock operation"),
                "lot": lot,
                "form": form,
                "opts": self.opts,
            },
        )

    @staticmethod
    def _operate(lot, data, actor):
        operation, quantity = data["operation"], data["quantity"]
        reason, reference = data["reason"], data["reference"]
        if operation == "count":
            services.stock_count(lot=lot, counted=quantity, actor=actor, note=reason)
        elif operation == "discard":
            services.stock_discard(
                lot=lot, quantity=quantity, reason=data["waste_reason"], actor=actor, note=reason
            )
        elif operation == "adjust":
            services.stock_adjust(lot=lot, quantity=quantity, reason=reason, actor=actor)
        elif operation == "return":
            services.lot_return(
                lot=lot, quantity=quantity, actor=actor, reason=reason, reference=reference
            )
        elif operation == "quarantine":
            services.lot_quarantine(lot=lot, actor=actor, reason=reason)
        elif operation == "release":
            services.lot_release(lot=lot, actor=actor, reason=reason)
        elif operation == "recall":
            services.lot_recall(lot=lot, actor=actor, reason=reason)


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin, LargeTableAdmin, admin.ModelAdmin):
    """The ledger, read-only: nothing in it is added here, changed or deleted."""

    list_display = [
        "occurred_at",
        "lot",
        "kind",
        "quantity",
        "unit_cost",
        "actor",
        "waste_reason",
        "reason",
        "reference",
    ]
    list_filter = ["kind", "waste_reason", "occurred_at", "lot__product__category"]
    list_select_related = ["lot__product", "actor"]
    search_fields = ["lot__lot_number", "lot__product__name", "reference"]
    date_hierarchy = "occurred_at"
